# Data sets -> normalised tensors (one cached artifact per data set).


def dataset_source_files(wildcards):
    """Local files a data set is read from, so that replacing them re-prepares it."""
    spec = config["datasets"][wildcards.dataset]
    if spec["source"] == "embedded":
        from lossland.data import embedded_archive

        return [str(embedded_archive())]
    path = spec.get("path")
    if spec["source"] in ("imagefolder", "python-archive") and path and os.path.exists(path):
        return [path]
    return []


rule prepare_dataset:
    input:
        dataset_source_files,
    output:
        tensors=f"{RESULTS}/data/{{dataset}}.safetensors",
        meta=f"{RESULTS}/data/{{dataset}}.json",
    params:
        name=lambda wc: wc.dataset,
        spec=lambda wc: config["datasets"][wc.dataset],
    log:
        f"{RESULTS}/logs/prepare_dataset/{{dataset}}.log",
    threads: THREADS
    conda:
        "../envs/lossland.yaml"
    script:
        "../scripts/prepare_dataset.py"
