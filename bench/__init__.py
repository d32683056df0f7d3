"""`make bench`: every stage measured against its floor or peer, side by side, in one run."""
