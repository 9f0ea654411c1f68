"""The web demo: a Gradio page over the library's streaming pipeline.

``python -m pervfi.app`` serves it (see `pervfi.app.__main__`); ``app.py`` at the repository
root serves it as a Hugging Face Space. `jobs` runs the work without Gradio, `ui` is the page,
`limits` and `methods` are what the page may offer. Only this package imports Gradio.
"""
