"""What training and evaluation share: building a model from a spec, run folders, distributed set-up.

``model`` builds zoo models or users' factories and reads state_dict files; ``rundir`` reads and
writes run folders (config, metrics, checkpoints, final weights); ``distributed`` sets up and tears
down torchrun process groups. Both :mod:`antialias.train` and :mod:`antialias.eval` build on these;
neither imports the other.
"""
