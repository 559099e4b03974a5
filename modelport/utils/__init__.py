"""KServe's ``kserve.utils`` package path; see :mod:`modelport.utils.utils`."""
