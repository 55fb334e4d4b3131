"""Running parties on a prepared in-memory mesh (whose links a test may wrap to record what a
party receives), and the statistic the view tests compare."""

import threading

import numpy as np

from tessera.runtime.inprocess import run_dealer, run_party


def run_on_mesh(program, protocol, mesh, names):
    """``program`` at every party of ``names`` (threads over ``mesh``; its last endpoint is the
    dealer when the protocol has one)."""
    n = len(names)
    threads = [threading.Thread(target=run_party, args=(program, protocol, mesh[i], names, 16)) for i in range(n)]
    if len(mesh) > n:
        threads.append(threading.Thread(target=run_dealer, args=(mesh[-1], n)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def top_byte_hist(words):
    """Counts of the top byte of 64-bit words: uniform words give a flat histogram."""
    return np.bincount((words >> np.uint64(56)).astype(np.int64), minlength=256)
