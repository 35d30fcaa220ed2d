"""Models: CNN architectures, pretrained weights, fold ensembles, the registry, predictions."""
