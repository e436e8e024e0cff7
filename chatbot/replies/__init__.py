"""Reply selection: the reply index, the ranker, the selector and the reply filter."""
