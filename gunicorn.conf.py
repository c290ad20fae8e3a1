"""gunicorn settings for the Coop 85 portal (`gunicorn -c gunicorn.conf.py wsgi:app`).

Values can be overridden on the command line or with GUNICORN_CMD_ARGS. See the README,
« Mise en production ».
"""

import multiprocessing
import os

bind = os.environ.get("COOP85_BIND", "127.0.0.1:8000")
# Two workers per core is plenty: requests wait on the database, not on Python. On the 2-core
# server of OCCE 85 that is 4 workers of 2 threads.
workers = int(os.environ.get("COOP85_WORKERS", 2 * multiprocessing.cpu_count()))
threads = int(os.environ.get("COOP85_THREADS", 2))
worker_class = "gthread"
# A request that runs longer is killed: imports and PDFs are built to stay well under it, and
# PostgreSQL statements give up after DATABASE_STATEMENT_TIMEOUT (20 s) first.
timeout = 30
graceful_timeout = 20  # a restart lets running requests finish
keepalive = 5
max_requests = 2000  # recycle workers now and then (memory of large imports)
max_requests_jitter = 200
limit_request_line = 8190
# One access line per request on standard output (systemd's journal keeps it); the portal's own
# line, with the request id and the user, goes to standard error.
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s" id=%({x-request-id}o)s'
errorlog = "-"
loglevel = "info"
forwarded_allow_ips = "127.0.0.1"
