"""The parts of ``ganrobust.watch`` (:mod:`ganrobust.hook` wires them), each readable alone:

* ``observer``: PyTorch's optimizer step hooks and the loop's forwards as typed G-step events;
* ``steps``: the typed state between hooks (the captured step, what a rank measured, the pending one);
* ``shadows``: the snapshot store — D's ring, θ and θ', the shadow G and D measurements run on;
* ``measurer``: the pure measurement of one step — snapshot scorer and probes in, rows and record out;
* ``sharding``: torch.distributed — this rank's probe rows, rank 0's state, FSDP2 mirrors, the gathers;
* ``sinks``: rank 0's outputs — the run directory (through the run store), TensorBoard, the checkpoint;
* ``conductor``: one measured step through the parts, and D's next update (persistence);
* ``overlap``: where measurements run — here, or on the measurement thread (:mod:`ganrobust.background`);
* ``guards``: failures become recorded errors, never exceptions in the user's loop.
"""
