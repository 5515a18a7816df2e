"""Baseline (a): a function that answers 200 and does nothing else."""


def webhook(request):
    return "OK\n", 200
