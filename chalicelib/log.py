"""The service's structured logger (Powertools, JSON lines)."""

from aws_lambda_powertools import Logger

logger = Logger(service="mib-prereqs")
