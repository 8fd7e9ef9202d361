"""Migration friction: what ties a PyTorch/JAX code base to CUDA, what each target stack
(Neuron, TPU, Gaudi, ROCm) offers instead, how long the port takes, and when it pays back.

Core functions here work on file contents the edge (``cli/port_cmds.py``) has already read;
nothing here opens a file of the scanned project, imports it or runs it. The knowledge base
(one TOML per target stack) and the effort model ship as package data in ``porting/data``.
See docs/PORTING.md.
"""
