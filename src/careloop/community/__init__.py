"""Learning communities and their learning cycles (issue 16)."""
