"""The dashboard's pages for AWS: QuickSight definitions generated from code (``definitions``) and their
deployment through boto3 (``deploy``)."""
