from __future__ import annotations

import xml.etree.ElementTree as ET

from airflow_aisec.plugins.charts import bar_chart, line_chart, severity_bar

SVG = "{http://www.w3.org/2000/svg}"


def test_line_chart_is_valid_svg_with_one_polyline_per_series_and_gaps():
    svg = ET.fromstring(line_chart([("a<b>", [0.0, None, 0.5, 1.0]), ("c", [0.2])], title="t & u"))
    assert len(svg.findall(f"{SVG}polyline")) == 1  # one point is not a line
    assert len(svg.findall(f"{SVG}circle")) == 4  # None is a gap
    assert svg.find(f"{SVG}title").text == "t & u"
    assert "a<b>" in [t.text for t in svg.iter(f"{SVG}text")]


def test_line_chart_without_series_says_so():
    assert "no data" in line_chart([], title="t")


def test_bar_chart_highlights_flagged_bars_and_scales_to_the_largest():
    svg = ET.fromstring(bar_chart([("x", 0.5, False), ("y", 1.0, True)], title="t", width=260))
    rects = svg.findall(f"{SVG}rect")
    assert [r.get("fill") for r in rects] == ["#7b1fa2", "#c62828"]
    assert float(rects[1].get("width")) == 2 * float(rects[0].get("width"))


def test_severity_bar_widths_are_proportional():
    svg = ET.fromstring(severity_bar({"critical": 1, "high": 3}, width=400))
    assert [float(r.get("width")) for r in svg.findall(f"{SVG}rect")] == [100.0, 300.0]
