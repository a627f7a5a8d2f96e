"""The jobs: a long video cut into chunks (`longvideo`), a folder of videos (`batch`).

longvideo   LongVideoOptions, LongVideoJob (the orchestrator), process_long_video, report
scheduler   ChunkScheduler: the detection loop over the source, chunks in line or by a worker pool
checkpoint  Checkpoint: detection state and failed chunks' detections, for a rerun
summary     LongSummary: chunk records, totals, filter decisions and folders, resume, writing
paths       Paths: the long job's output folders and chunk files; frame_range
records     Status, ChunkRecord, ChunkResult, FileRecord, FilterDecision; track_records, count_statuses
previous    both jobs: face_parameters, previous_summary (reuse, redo or refuse an earlier run)
batch       process_folder, Serialised, find_videos
"""
