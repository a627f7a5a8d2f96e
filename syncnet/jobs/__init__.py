"""The jobs: a long video cut into chunks (`longvideo`), a folder of videos (`batch`)."""
