"""The AWS side of the lakehouse as code: one CDK stack (``infra.stack``), its synthesis
(``infra.synth``), and the stack's outputs turned into settings (``infra.outputs``)."""
