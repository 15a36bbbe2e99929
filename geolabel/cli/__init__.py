"""The geolabel command line: a thin layer that parses, calls the library once, and prints."""
