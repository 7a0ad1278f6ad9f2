"""careloop's command line: thin commands that call the domain packages."""
