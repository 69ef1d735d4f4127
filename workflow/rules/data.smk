# Data sets -> normalised tensors (one cached artifact per data set).


rule prepare_dataset:
    input:
        get_dataset_sources,
    output:
        tensors=paths.prepared_data("{dataset}"),
        meta=paths.prepared_meta("{dataset}"),
    log:
        paths.log("prepare_dataset", "{dataset}"),
    benchmark:
        paths.benchmark("prepare_dataset", "{dataset}")
    conda:
        "../envs/lossland.yaml"
    threads: THREADS
    resources:
        **job_resources("data", compute=False),
    params:
        name=lambda wc: wc.dataset,
        spec=lambda wc: config["datasets"][wc.dataset],
    script:
        "../scripts/prepare_dataset.py"
