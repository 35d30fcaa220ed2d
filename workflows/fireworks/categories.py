"""FireWorks categories of the platform's jobs: where each kind of job runs on a cluster.

DFT and MLIP jobs (statics, relaxations, CINEB, rounds) go to ``dft`` workers (CPU nodes); training
goes to ``gpu`` workers. The fworkers and queue adapters in ``deploy/`` use the same names.
"""

#: category of statics, relaxations, CINEB and every job without a category of its own
DFT_CATEGORY = "dft"

#: category of training jobs: routed to GPU workers
TRAINING_CATEGORY = "gpu"
