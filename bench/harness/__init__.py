"""What the bench scripts share: process usage (:mod:`.usage`), private servers (:mod:`.servers`),
statistics and ratios (:mod:`.stats`), and command-line plumbing (:mod:`.cli`)."""
