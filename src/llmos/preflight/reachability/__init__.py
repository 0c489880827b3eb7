"""Reachability between nodes: temporary listeners (``--listen``) and peer probes (``--peer``)."""
