"""jobflow Makers: the surface static, valley relaxations and CINEB, VASP documents, training."""
