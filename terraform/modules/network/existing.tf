# Checks on a brought-in VPC: it exists, and the private subnets span at least two zones.
data "aws_vpc" "existing" {
  count = var.create_vpc ? 0 : 1
  id    = var.vpc_id

  lifecycle {
    precondition {
      condition     = var.vpc_id != null && length(var.private_subnet_ids) >= 2
      error_message = "With create_vpc = false, set vpc_id and at least two private_subnet_ids."
    }
  }
}

data "aws_subnet" "existing_private" {
  count = var.create_vpc ? 0 : length(var.private_subnet_ids)
  id    = var.private_subnet_ids[count.index]

  lifecycle {
    postcondition {
      condition     = self.vpc_id == var.vpc_id
      error_message = "Every private subnet must belong to vpc_id."
    }
  }
}

check "existing_subnets_span_two_zones" {
  assert {
    condition     = var.create_vpc || length(distinct(data.aws_subnet.existing_private[*].availability_zone)) >= 2
    error_message = "EKS needs private subnets in at least two availability zones."
  }
}
