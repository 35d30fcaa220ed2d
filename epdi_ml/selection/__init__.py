"""Active selection of saddles: the strategies and the Bayesian linear model behind ``design``."""
