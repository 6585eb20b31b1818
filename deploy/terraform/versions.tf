terraform {
  # 1.9: validation blocks may refer to other variables (zip_path or s3_bucket + s3_key, hooks
  # only on served groups).
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.32: aws_lambda_function's logging_config (JSON logs, as the SAM template's
      # LoggingConfig); aws_cloudwatch_event_rule's state arrived before it, in 5.28.
      version = ">= 5.32"
    }
  }
}
