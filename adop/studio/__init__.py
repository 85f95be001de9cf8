"""The studio side of the service, without Prefect: who the studios are, where their files live, what a submission
is, safe uploads and the webhook message.

    ROOT/                         (ADOP_STUDIO_ROOT, shared by the service host and the workers)
      studios.json                the studios: token hashes and webhooks
      <studio>/inbox/<shot>/v001/ one submission: images/, submission.json, optional camera_path.json
      <studio>/workspace/         the studio's artifact cache (every run of the studio writes here only)
      <studio>/deliveries/<shot>/v001/  what a run delivers: frames, videos, contact sheet, quick look, run.json

A run is named by studio, shot and version only, never by a path, so it cannot read or write another studio's files;
the paths it resolves are checked to stay inside the studio's folders (``StudioRoot.inside``).
"""
