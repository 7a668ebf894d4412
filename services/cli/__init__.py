"""`jobstream`: the command line of jobstream (enqueue, show, list, watch, cancel, retry, delete,
queues, pause, resume, workers), over the Python client."""
