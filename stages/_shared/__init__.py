"""What the stage scripts share and the library must not know: DVC's stage files and $DVC_STAGE,
params.yaml, the repository's paths, atomic writes of the stages' outputs, the stage host's
client side. Imported as `stages._shared` with the repository first on sys.path (each stage
script puts it there, in place of its own folder)."""
