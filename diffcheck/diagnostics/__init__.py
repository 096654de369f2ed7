"""Where a derivative breaks: kinks, unstable regions, and the search for failing points."""
