"""One module per job, each owning its model builder, loss, eval metrics, dataset function and
output files: `pretraining`, `classification` (GLUE / XNLI), `span_labeling` (SQuAD), `tagging`
(NER). A task object has `loop_task` (training.loop.Task) and `train_data(global_batch)`; the run
scripts build it from their flags (official_bert.cli) and drive the shared loop.
"""
