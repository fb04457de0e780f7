"""Live views over WebSockets (Channels): the log tail and dashboards that update themselves."""
