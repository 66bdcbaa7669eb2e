"""Demo/test model server (stdlib HTTP, loopback): verify-before-load, rate limit, inference log."""
