/**
 * The subset of Terraform's JSON syntax and of the hashicorp/aws provider that gen-lab emits,
 * typed so that a misspelt attribute or a missing required one fails to compile.
 *
 * Attribute names are the provider's own, checked against its documentation
 * (hashicorp/terraform-provider-aws, website/docs/r/<resource>.html.markdown). Every attribute
 * used here exists in provider 5.x and 6.x alike. Only what gen-lab writes is modelled: adding
 * an attribute means reading its documentation first and adding it here.
 */

/**
 * A Terraform expression in a JSON string, `${aws_instance.foo_runner_foo_1.id}`. Attributes that
 * name a resource created in the same configuration take only this, so a literal id of something
 * that does not exist yet cannot be written by mistake.
 */
export type Ref = `\${${string}}`;

/** The tags every AWS resource takes; gen-lab always sets Name so the console shows what it is. */
export interface Tags {
  readonly Name: string;
}

/** `aws_subnet` (r/subnet). */
export interface AwsSubnet {
  readonly vpc_id: string;
  readonly cidr_block: string;
  readonly availability_zone: string;
  readonly tags: Tags;
}

/** `aws_route_table` (r/route_table). Routes are separate `aws_route`s: never inline `route` blocks too. */
export interface AwsRouteTable {
  readonly vpc_id: string;
  readonly tags: Tags;
}

/** `aws_route_table_association` (r/route_table_association). */
export interface AwsRouteTableAssociation {
  readonly subnet_id: Ref;
  readonly route_table_id: Ref;
}

/** `aws_route` (r/route): one destination, exactly one target. */
export type AwsRoute = {
  readonly route_table_id: Ref;
  readonly destination_cidr_block: string;
} & (
  | { readonly network_interface_id: Ref }
  | { readonly nat_gateway_id: string }
  | { readonly gateway_id: string }
);

/** `aws_security_group` (r/security_group), without inline rules: they are separate resources. */
export interface AwsSecurityGroup {
  readonly name: string;
  readonly description: string;
  readonly vpc_id: string;
  readonly tags: Tags;
}

/**
 * `aws_vpc_security_group_ingress_rule` / `aws_vpc_security_group_egress_rule`
 * (r/vpc_security_group_ingress_rule, r/vpc_security_group_egress_rule). With `ip_protocol = "-1"`
 * (every protocol) the ports must be left out.
 */
export interface AwsVpcSecurityGroupRule {
  readonly security_group_id: Ref;
  readonly cidr_ipv4: string;
  readonly ip_protocol: "-1";
  readonly description: string;
  readonly tags: Tags;
}

/** The `metadata_options` block of `aws_instance`. */
export interface AwsInstanceMetadataOptions {
  readonly http_endpoint: "enabled" | "disabled";
  /** "required" is IMDSv2 only. */
  readonly http_tokens: "required" | "optional";
}

/** `aws_instance` (r/instance). */
export interface AwsInstance {
  readonly ami: string;
  readonly instance_type: string;
  readonly subnet_id: Ref;
  readonly private_ip: string;
  /** False: the instance routes packets that are neither from nor to itself. */
  readonly source_dest_check: boolean;
  readonly vpc_security_group_ids: readonly Ref[];
  readonly metadata_options: AwsInstanceMetadataOptions;
  readonly tags: Tags;
}

/** `aws_eip` (r/eip). `domain = "vpc"` replaces the `vpc = true` that provider 6 removed. */
export interface AwsEip {
  readonly domain: "vpc";
  readonly instance: Ref;
  readonly tags: Tags;
}

/** `aws_s3_bucket` (r/s3_bucket). */
export interface AwsS3Bucket {
  readonly bucket: string;
  readonly tags: Tags;
}

/** `aws_s3_bucket_public_access_block` (r/s3_bucket_public_access_block). */
export interface AwsS3BucketPublicAccessBlock {
  readonly bucket: Ref;
  readonly block_public_acls: boolean;
  readonly block_public_policy: boolean;
  readonly ignore_public_acls: boolean;
  readonly restrict_public_buckets: boolean;
}

/** `aws_s3_bucket_server_side_encryption_configuration` (r/s3_bucket_server_side_encryption_configuration). */
export interface AwsS3BucketServerSideEncryptionConfiguration {
  readonly bucket: Ref;
  /** A block set: Terraform's JSON syntax writes repeatable blocks as an array of objects. */
  readonly rule: readonly {
    readonly apply_server_side_encryption_by_default: {
      readonly sse_algorithm: "AES256" | "aws:kms";
    };
  }[];
}

/** Every resource type gen-lab emits, by type then by resource name, in the order they are written. */
export interface AwsResources {
  readonly aws_subnet: Record<string, AwsSubnet>;
  readonly aws_route_table: Record<string, AwsRouteTable>;
  readonly aws_route_table_association: Record<
    string,
    AwsRouteTableAssociation
  >;
  readonly aws_route: Record<string, AwsRoute>;
  readonly aws_security_group: Record<string, AwsSecurityGroup>;
  readonly aws_vpc_security_group_ingress_rule: Record<
    string,
    AwsVpcSecurityGroupRule
  >;
  readonly aws_vpc_security_group_egress_rule: Record<
    string,
    AwsVpcSecurityGroupRule
  >;
  readonly aws_instance: Record<string, AwsInstance>;
  readonly aws_eip: Record<string, AwsEip>;
  readonly aws_s3_bucket: Record<string, AwsS3Bucket>;
  readonly aws_s3_bucket_public_access_block: Record<
    string,
    AwsS3BucketPublicAccessBlock
  >;
  readonly aws_s3_bucket_server_side_encryption_configuration: Record<
    string,
    AwsS3BucketServerSideEncryptionConfiguration
  >;
}

/** A whole `.tf.json` file: Terraform's JSON configuration syntax. */
export interface TerraformJson {
  readonly terraform: {
    readonly required_providers: {
      readonly aws: {
        readonly source: "hashicorp/aws";
        readonly version: string;
      };
    };
  };
  readonly provider: { readonly aws: { readonly region: string } };
  readonly resource: AwsResources;
  readonly output: Record<
    string,
    { readonly description: string; readonly value: Ref }
  >;
}
