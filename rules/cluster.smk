# Running on SLURM (profiles/slurm): wall time that grows with each retry, and the checks that stop a
# misconfigured cluster run with one line before any job is submitted. Include right after
# common.smk, so the rules can use runtime_of().
import shutil

from advmri.cluster import (
    ClusterError,
    group_fixes,
    growing_runtime,
    partition_of,
    read_partitions,
    sbatch_request,
    size_problem,
    slurm_problem,
    weights_problem,
)

# Rules that take their resources from another rule's section of the config's `resources`.
RESOURCE_SECTIONS = {"evaluate_reference": "evaluate", "stats": "report"}


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


def last_attempt(job):
    """(number of the job's last try, its runtime then in minutes): retries grow the runtime."""
    attempts = job.restart_times + 1
    if attempts == 1:
        return 1, job.resources.get("runtime")
    job.attempt = attempts  # resources are evaluated again for that try
    try:
        return attempts, job.resources.get("runtime")
    finally:
        job.attempt = 1


def group_problem(workflow, partitions):
    """One line when a group job, as Snakemake sizes it for sbatch, cannot start in its partition."""
    dag = workflow.dag
    groups = {dag.get_job_group(job) for job in dag.needrun_jobs() if job.group}
    for group in sorted((group for group in groups if group is not None), key=str):
        resources = dict(group.resources.items())
        partition = partition_of(
            str(resources.get("slurm_partition") or ""), partitions
        )
        if partition is None:
            continue
        first_rule = min(job.rule.name for job in group.jobs)
        section = RESOURCE_SECTIONS.get(first_rule, first_rule)
        request = sbatch_request(resources, *last_attempt(group))
        what = f"group {group.groupid} ({len(group.jobs)} jobs)"
        problem = size_problem(
            what, request, partition, group_fixes(group.groupid, section)
        )
        if problem:
            return problem
    return None


def needs_imagenet_weights(workflow):
    """True when a planned fine-tune builds the perceptual loss (W_per > 0)."""
    return any(
        job.rule.name == "finetune" and float(job.params.settings["cell"]["w_per"]) > 0
        for job in workflow.dag.needrun_jobs()
    )


def check_slurm_run(workflow):
    """Stop with one line when the jobs of this run cannot be submitted to SLURM as configured."""
    if not uses_slurm_executor(workflow):
        return
    jobs = [job for job in workflow.dag.needrun_jobs() if not job.is_local]
    rules = [(job.rule.name, dict(job.resources.items())) for job in jobs]
    sbatch = shutil.which("sbatch")
    # rule -> keys its set-resources give it (a placeholder there needs --set-resources)
    overwritten = workflow.resource_settings.overwrite_resources or {}
    set_resources = {rule: set(keys) for rule, keys in overwritten.items()}
    problem = slurm_problem(rules, sbatch, None, set_resources)
    if problem is None:
        try:
            partitions = read_partitions()
            last_attempts = {job.rule.name: last_attempt(job) for job in jobs}
            problem = slurm_problem(
                rules,
                sbatch,
                partitions,
                set_resources,
                last_attempts,
                RESOURCE_SECTIONS,
            )
            problem = problem or group_problem(workflow, partitions)
        except ClusterError as error:
            problem = str(error)
    if problem is None:
        from advmri.models.perceptual import imagenet_weights_file

        problem = weights_problem(
            config["perceptual"]["weights"],
            needs_imagenet_weights(workflow),
            imagenet_weights_file(),
        )
    if problem:
        from snakemake.logging import logger

        logger.error(problem)
        # SystemExit ends the run cleanly (lock released) with only the line above;
        # an exception would add Snakemake's traceback lines.
        raise SystemExit(1)


onstart:
    check_slurm_run(workflow)
