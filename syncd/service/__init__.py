"""syncd as a long-running service: the daemon, its HTTP app, the ICS feed it serves, the server."""
