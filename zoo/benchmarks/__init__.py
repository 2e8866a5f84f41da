"""The pieces of ``facezoo benchmark`` (:mod:`zoo.benchmark`): naive references, the suites,
result records and the leaderboard renderer."""
