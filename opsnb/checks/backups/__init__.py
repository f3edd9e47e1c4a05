"""Backups: the runbook's "Backup & Recovery" (backup notebook) and "Backup Verification" (restore-test notebook).

One module per concern; notebooks import the ones they use:

- ``tools``: the pg_* client programs, run with time limits and libpq environment variables;
- ``dumps``: pg_dump into the work folder, formats, checksums, the archive's table of contents;
- ``upload``: the dump to S3 with its checksum metadata and manifest (a gated action);
- ``inventory``: what the bucket holds, when each backup was taken, retention, the latest backup;
- ``download``: the latest backup into the work folder, and its checksum;
- ``scratch``: scratch database names and their guard, the work folder, leftovers of killed runs, cleanup;
- ``restore``: create, restore, read and always drop the scratch database; the restore and the RTO;
- ``verify``: what the restored data holds: tables, row counts, freshness, pg_amcheck.
"""
