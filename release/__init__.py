"""Release packaging, manifests, dataset card rendering, release diff and dashboard."""
