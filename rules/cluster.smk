# Running on SLURM (profiles/slurm): wall time that grows with each retry, and the checks that stop a
# misconfigured cluster run with one line before any job is submitted. Include right after
# common.smk, so the rules can use runtime_of().
import shutil

from advmri.cluster import (
    ClusterError,
    growing_runtime,
    read_partitions,
    size_problem,
    slurm_problem,
)


def runtime_of(rule_name):
    """The rule's `runtime` resource: resources.<rule>.runtime minutes, times the attempt number.

    With `retries` (profiles/slurm), a job SLURM killed at its time limit is resubmitted with
    more time and resumes from its checkpoint.
    """
    return growing_runtime(resources_of(rule_name)["runtime"])


def uses_slurm_executor(workflow):
    """True in the main process of a real (not dry) run with snakemake-executor-plugin-slurm.

    The executor is known only once the run starts (Workflow.execute sets executor_plugin before
    the onstart hook; jobs running inside SLURM use the `slurm-jobstep` executor and --no-hooks).
    """
    plugin = workflow.executor_plugin
    return plugin is not None and plugin.name == "slurm" and workflow.is_main_process


def check_slurm_run(workflow):
    """Stop with one line when the jobs of this run cannot be submitted to SLURM as configured."""
    if not uses_slurm_executor(workflow):
        return
    jobs = [
        (job.rule.name, dict(job.resources.items()))
        for job in workflow.dag.needrun_jobs()
        if not job.is_local
    ]
    sbatch = shutil.which("sbatch")
    # rule -> keys its set-resources give it (a placeholder there needs --set-resources)
    overwritten = workflow.resource_settings.overwrite_resources or {}
    set_resources = {rule: set(keys) for rule, keys in overwritten.items()}
    problem = slurm_problem(jobs, sbatch, None, set_resources)
    if problem is None:
        try:
            partitions = read_partitions()
            problem = slurm_problem(jobs, sbatch, partitions, set_resources)
            dag = workflow.dag
            groups = {dag.get_job_group(job) for job in dag.needrun_jobs() if job.group}
            for group in groups:
                resources = dict(group.resources.items())
                name = str(resources.get("slurm_partition") or "")
                what = f"group {group.groupid} ({len(group.jobs)} jobs)"
                problem = problem or size_problem(what, resources, partitions, name)
        except ClusterError as error:
            problem = str(error)
    if problem:
        from snakemake.logging import logger

        logger.error(problem)
        # SystemExit ends the run cleanly (lock released) with only the line above;
        # an exception would add Snakemake's traceback lines.
        raise SystemExit(1)


onstart:
    check_slurm_run(workflow)
