"""The command line (an edge): builds settings once and calls the library."""
