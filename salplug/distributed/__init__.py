"""Beyond one process: Ray Data for runs and evaluation, torch.distributed for training.

The Ray modules (`ray_run`, `ray_eval`, `ray_setup`) are imported only for ``--engine ray``:
`ray` is the optional extra ``salplug[ray]`` and the core never imports it.
`data_parallel` needs only torch, and the training loop uses it.
"""
