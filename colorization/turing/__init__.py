"""The Colorization Turing test: people judge colorizations as Zhang et al., pix2pix and CycleGAN did.

A real photo and a fake (a model's colorization of its gray version) are shown together for one second;
the rater says which had fake colours. The share of trials in which the fake was taken for real is each
method's fooling rate (50 % is chance). By job:

- study: the prepared study on disk (protocol, methods, pictures under random asset ids, study.json);
- methods: what makes fakes (checkpoints and ONNX files through the Colorizer, published models by name,
  folders of colorized images, the gray input as every study's floor, the hue-rotated vigilance fake);
- prepare: photos from a folder or a data config's split → 256 px real and fake pictures;
- protocol: one rater's trials (practice with feedback, balanced scored trials, vigilance checks);
- store: SQLite (WAL), raters and trials, written as each answer arrives;
- app: the ASGI web application (Starlette + uvicorn, the `turing` extra, imported only to serve);
- pages, static/rater.js: the rater's pages, plain HTML and a little JavaScript;
- results: fooling rates with a bootstrap over raters and photos, pairwise comparisons, vigilance;
- report: the console table, results.csv, results.json and the results page with its bar chart;
- cli: `python -m colorization.turing prepare|serve|results`.
"""
