"""CloudFormation engine: a stack either creates every resource of its template or fails, as on AWS.

moto creates the resources it has a CloudFormation model for and silently skips the others (a
stack with an ``AWS::KinesisFirehose::DeliveryStream`` goes ``CREATE_COMPLETE`` with no stream),
and a template its parser trips on answers HTTP 500. This engine (hook points: moto 5.2.5's
``Stack.create_resources`` and ``CloudFormationBackend.create_stack``):

* creates ``AWS::KinesisFirehose::DeliveryStream`` through the Firehose engine (moto has no
  CloudFormation model for it), with ``Ref`` (the name) and ``Fn::GetAtt: [X, Arn]``;
* fails a stack whose template names a resource type no engine can create before it creates
  anything: the resource's event is ``CREATE_FAILED`` with the reason, the stack rolls back to
  ``ROLLBACK_COMPLETE`` with AWS's ``StackStatusReason``;
* fails and rolls back a stack whose resource raises while being created (resources created
  before it are deleted, as a rollback does);
* checks a template as CloudFormation does before it creates the stack (a Resources block whose
  entries each have a Type, every Ref / Fn::GetAtt resolvable) and answers what moto cannot parse
  with AWS's 400 ``ValidationError`` ("Template format error: ...") instead of an internal error.
"""

from __future__ import annotations

import logging

log = logging.getLogger("labkit.cloudformation")


def unsupported_types(template: dict) -> list[tuple[str, str]]:
    """(logical id, type) of every resource no local engine can create."""
    from moto.cloudformation.parsing import NULL_MODELS, get_model_map

    models = get_model_map()
    missing = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        kind = resource.get("Type", "") if isinstance(resource, dict) else ""
        if kind in NULL_MODELS or kind.startswith("Custom::") or kind in models:
            continue
        missing.append((logical_id, kind))
    return missing


def validate_template(template: dict, parameters: dict | None = None) -> None:
    """CloudFormation's template checks (ValidationError, "Template format error: ...")."""
    from moto.cloudformation.exceptions import ValidationError

    def error(text: str) -> Exception:
        return ValidationError(message=f"Template format error: {text}")

    if not isinstance(template, dict):
        raise error("JSON not well-formed.")
    resources = template.get("Resources")
    if not isinstance(resources, dict) or not resources:
        raise error("At least one Resources member must be defined.")
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or not isinstance(resource.get("Type"), str):
            raise error(f"[/Resources/{logical_id}] Every Resources object must contain a Type member.")
    known = set(resources) | set(template.get("Parameters") or {}) | set(parameters or {})
    missing = sorted({name for name in _references(template) if name not in known
                      and not name.startswith("AWS::")})
    if missing:
        raise error(f"Unresolved resource dependencies [{', '.join(missing)}] in the Resources block "
                    "of the template")


def _references(node) -> list[str]:
    """Names that Ref and Fn::GetAtt point at, anywhere in the template."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.append(value)
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) and value else str(value).split(".")[0]
                if isinstance(target, str):
                    found.append(target)
            else:
                found.extend(_references(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_references(item))
    return found


def _resource_event(stack, logical_id: str, kind: str, status: str, reason: str | None) -> None:
    from moto.cloudformation.models import Event

    stack.events.append(Event(stack_id=stack.stack_id, stack_name=stack.name, logical_resource_id=logical_id,
                              physical_resource_id="", resource_type=kind, resource_status=status,
                              resource_status_reason=reason, resource_properties=None))


def _fail(stack, failures: list[tuple[str, str, str]]) -> None:
    """Roll the stack back after ``failures`` (logical id, type, reason), as AWS reports it."""
    for logical_id, kind, reason in failures:
        _resource_event(stack, logical_id, kind, "CREATE_FAILED", reason)
    names = ", ".join(logical_id for logical_id, _, _ in failures)
    stack.status_reason = (f"The following resource(s) failed to create: [{names}]. "
                                 "Rollback requested by user.")
    stack.status = "ROLLBACK_IN_PROGRESS"
    stack._add_stack_event("ROLLBACK_IN_PROGRESS", resource_status_reason=stack.status_reason)
    try:
        stack.resource_map.delete()
    except Exception:  # what could not be deleted stays, as a failed rollback would leave it
        log.exception("rollback of stack %s", stack.name)
    stack.status = "ROLLBACK_COMPLETE"
    stack._add_stack_event("ROLLBACK_COMPLETE")


def _delivery_stream_model():
    """A CloudFormation model for Firehose delivery streams (moto finds models by subclass)."""
    from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
    from moto.core.common_models import CloudFormationModel
    from moto.firehose.models import firehose_backends

    destinations = ("S3DestinationConfiguration", "ExtendedS3DestinationConfiguration",
                    "RedshiftDestinationConfiguration", "ElasticsearchDestinationConfiguration",
                    "SplunkDestinationConfiguration", "HttpEndpointDestinationConfiguration",
                    "SnowflakeDestinationConfiguration", "IcebergDestinationConfiguration")

    class DeliveryStream(CloudFormationModel):
        def __init__(self, name: str, arn: str, account_id: str, region_name: str):
            self.name, self.arn, self.account_id, self.region_name = name, arn, account_id, region_name

        @staticmethod
        def cloudformation_name_type() -> str:
            return "DeliveryStreamName"

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::KinesisFirehose::DeliveryStream"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr == "Arn"

        def get_cfn_attribute(self, attribute_name: str) -> str:
            if attribute_name == "Arn":
                return self.arn
            raise UnformattedGetAttTemplateException()

        @property
        def physical_resource_id(self) -> str:
            return self.name

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id,
                                            region_name, **kwargs):
            props = cloudformation_json.get("Properties") or {}
            config = {name: props.get(name) for name in destinations}
            arn = firehose_backends[account_id][region_name].create_delivery_stream(
                region_name, resource_name, props.get("DeliveryStreamType", "DirectPut"),
                props.get("KinesisStreamSourceConfiguration"),
                props.get("DeliveryStreamEncryptionConfigurationInput"),
                config["S3DestinationConfiguration"], config["ExtendedS3DestinationConfiguration"],
                config["RedshiftDestinationConfiguration"], config["ElasticsearchDestinationConfiguration"],
                config["SplunkDestinationConfiguration"], config["HttpEndpointDestinationConfiguration"],
                config["SnowflakeDestinationConfiguration"], config["IcebergDestinationConfiguration"],
                props.get("Tags") or [])
            return cls(resource_name, arn, account_id, region_name)

        @classmethod
        def update_from_cloudformation_json(cls, original_resource, new_resource_name,
                                            cloudformation_json, account_id, region_name):
            cls.delete_from_cloudformation_json(original_resource.name, {}, account_id, region_name)
            return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json,
                                                       account_id, region_name)

        @classmethod
        def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id,
                                            region_name) -> None:
            firehose_backends[account_id][region_name].delete_delivery_stream(resource_name)

        def delete(self, account_id: str, region_name: str) -> None:
            firehose_backends[account_id][region_name].delete_delivery_stream(self.name)

        def is_created(self) -> bool:
            return True

    return DeliveryStream


_models: list = []


def install() -> None:
    from moto.cloudformation import models, parsing

    _models.append(_delivery_stream_model())  # kept alive: moto lists models by __subclasses__()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
    from moto.cloudformation.exceptions import ValidationError
    from moto.core.exceptions import ServiceException
    from werkzeug.exceptions import HTTPException

    original_create_resources = models.Stack.create_resources

    def create_resources(self):
        missing = unsupported_types(self.template_dict)
        if missing:
            self.status = "CREATE_IN_PROGRESS"
            _fail(self, [(logical_id, kind, f"Resource type {kind} is not supported by labkit's local "
                                            "AWS: no local engine creates it (run this stack on AWS)")
                         for logical_id, kind in missing])
            return
        try:
            original_create_resources(self)
        except (ServiceException, HTTPException) as exc:
            _fail(self, [(self.name, "AWS::CloudFormation::Stack", str(exc))])
        except Exception as exc:
            log.exception("stack %s: a resource failed to create", self.name)
            _fail(self, [(self.name, "AWS::CloudFormation::Stack", f"{type(exc).__name__}: {exc}")])

    models.Stack.create_resources = create_resources

    original_create_stack = models.CloudFormationBackend.create_stack

    def create_stack(self, name, template, parameters=None, *args, **kwargs):
        try:
            parsed = models.Stack.parse_template(template)
        except Exception as exc:
            raise ValidationError(message=f"Template format error: {exc}") from None
        validate_template(parsed, parameters)
        try:
            return original_create_stack(self, name, template, parameters, *args, **kwargs)
        except (ServiceException, HTTPException):
            raise
        except Exception as exc:
            raise ValidationError(message=f"Template format error: {type(exc).__name__}: {exc}") from None

    models.CloudFormationBackend.create_stack = create_stack
