"""The runner side: what ``opsnb run`` does with a runbook — read the parameters (config), read the
notebook (inspection), type the values (parameterize), execute it (execute), scrub it (redact), render
and write the evidence (report, evidence, index); ``lab`` prepares JupyterLab sessions."""
