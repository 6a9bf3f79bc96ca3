"""SageMaker Model Registry: model package groups and versions as AWS keeps them, approval events,
and models created from a model package that really serve.

moto already stores groups and versioned packages (InferenceSpecification, ModelMetrics,
ModelApprovalStatus, list filters and sorting). What it gets wrong or lacks, fixed here:

* ``update_model_package`` wipes the fields a request leaves out (an approval-only update erased
  ApprovalDescription and CustomerMetadataProperties; a description-only one erased the status);
* version numbers are ``len(group) + 1`` (a deleted version's number came back); AWS never reuses;
* ``delete_model_package`` / ``delete_model_package_group`` are missing (HTTP 500);
* no "SageMaker Model Package State Change" events: created and approval-changed versions are put
  on the default event bus (``labkit.local.events``), with the package's description as detail;
* ``create_model(Containers=[{"ModelPackageName": arn}])``: the hosting engine serves the
  package's inference container (Image, ModelDataUrl, Environment), as AWS resolves it.
"""

from __future__ import annotations

import threading

from labkit.local import events

DETAIL_TYPE = "SageMaker Model Package State Change"
_lock = threading.Lock()
_next_version: dict[tuple[str, str, str], int] = {}  # (account, region, group) -> next number


def _put_event(package, updated_fields: list[str] | None = None) -> None:
    extra = {"UpdatedModelPackageFields": updated_fields} if updated_fields else None
    events.sagemaker_event(package, DETAIL_TYPE, extra=extra)


def resolve_package(backend, name_or_arn: str):
    """The model package a name or ARN designates (AWS's ValidationException when missing)."""
    from moto.sagemaker.exceptions import ValidationError

    mapped = backend.model_package_name_mapping.get(name_or_arn, name_or_arn)
    package = backend.model_packages.get(mapped)
    if package is None:
        raise ValidationError(message=f"Model package {name_or_arn} not found")
    return package


def install() -> None:
    from moto.sagemaker import models, responses
    from moto.sagemaker.exceptions import ValidationError

    from labkit.local.server import on_reset

    backend_cls = models.SageMakerModelBackend
    original_create = backend_cls.create_model_package
    original_update = backend_cls.update_model_package
    original_create_model = backend_cls.create_model

    def create_model_package(self, **kwargs):
        group = kwargs.get("model_package_group_name")
        if group and group.startswith("arn:"):
            group = kwargs["model_package_group_name"] = group.split("/")[-1]
        if kwargs.get("model_approval_status") is None and group:
            kwargs["model_approval_status"] = "PendingManualApproval"  # AWS's default for versions
        arn = original_create(self, **kwargs)
        package = self.model_packages[arn]
        if group:
            key = (self.account_id, self.region_name, group)
            with _lock:
                used = [p.model_package_version for p in self.model_packages.values()
                        if p.model_package_group_name == group and p is not package]
                version = max([_next_version.get(key, 1)] + [v + 1 for v in used if v])
                _next_version[key] = version + 1
            if version != package.model_package_version:
                del self.model_packages[arn]
                for alias in [k for k, v in self.model_package_name_mapping.items() if v == arn]:
                    del self.model_package_name_mapping[alias]
                package.model_package_version = version
                package.arn = arn = models.arn_formatter(
                    region_name=self.region_name, account_id=self.account_id,
                    _type="model-package", _id=f"{group.lower()}/{version}")
                for status in package.model_package_status_details.values():
                    for item in status:
                        item["Name"] = arn
                self.model_packages[arn] = package
                self.model_package_name_mapping[arn] = arn
                self.model_package_name_mapping[package.model_package_name] = arn
        _put_event(package)
        return arn

    def update_model_package(self, model_package_arn, model_approval_status, approval_description,
                             customer_metadata_properties, customer_metadata_properties_to_remove,
                             additional_inference_specifications_to_add):
        package = resolve_package(self, model_package_arn)
        before = package.model_approval_status
        if approval_description is None:
            approval_description = package.approval_description
        if customer_metadata_properties is None:
            customer_metadata_properties = package.customer_metadata_properties
        else:
            customer_metadata_properties = {**(package.customer_metadata_properties or {}),
                                            **customer_metadata_properties}
        if model_approval_status is None:
            model_approval_status = before
        arn = original_update(self, package.arn, model_approval_status, approval_description,
                              customer_metadata_properties, customer_metadata_properties_to_remove,
                              additional_inference_specifications_to_add)
        if package.model_approval_status != before:
            _put_event(package, ["ModelApprovalStatus"])
        return arn

    def delete_model_package(self, name_or_arn):
        package = resolve_package(self, name_or_arn)
        del self.model_packages[package.arn]
        for alias in [k for k, v in self.model_package_name_mapping.items() if v == package.arn]:
            del self.model_package_name_mapping[alias]

    def delete_model_package_group(self, name):
        group = self.model_package_groups.get(name)
        if group is None:
            arn = models.arn_formatter("model-package-group", name, self.account_id, self.region_name)
            raise ValidationError(message=f"ModelPackageGroup {arn} does not exist.")
        if any(p.model_package_group_name == name for p in self.model_packages.values()):
            raise ValidationError(message=f"Model Package Group {name} cannot be deleted because "
                                          "it contains model packages; delete them first.")
        del self.model_package_groups[name]
        _next_version.pop((self.account_id, self.region_name, name), None)

    def create_model(self, **kwargs):
        containers = [c for c in [kwargs.get("primary_container")] if c] + list(
            kwargs.get("containers") or [])
        for container in containers:
            if container.get("ModelPackageName"):
                package = resolve_package(self, container["ModelPackageName"])
                spec = (package.inference_specification or {}).get("Containers") or [{}]
                resolved = {k: v for k, v in spec[0].items() if k in {"Image", "ModelDataUrl",
                                                                       "Environment"}}
                container["_labkit_resolved"] = resolved
                for key, value in resolved.items():
                    container.setdefault(key, value)
        return original_create_model(self, **kwargs)

    original_model_response = models.Model.response_object

    def model_response(self):
        """describe_model shows the container as it was asked (ModelPackageName), as AWS does."""
        response = dict(original_model_response.fget(self))

        def as_asked(container):
            container = dict(container)  # never edit the stored container the engine serves
            for name in container.pop("_labkit_resolved", None) or ():
                container.pop(name, None)
            return container

        if response.get("PrimaryContainer"):
            response["PrimaryContainer"] = as_asked(response["PrimaryContainer"])
        if response.get("Containers"):
            response["Containers"] = [as_asked(c) for c in response["Containers"]]
        return response

    def response_delete_model_package(self):
        from moto.core.responses import EmptyResult

        self.sagemaker_backend.delete_model_package(self._get_param("ModelPackageName"))
        return EmptyResult()

    def response_delete_model_package_group(self):
        from moto.core.responses import EmptyResult

        self.sagemaker_backend.delete_model_package_group(self._get_param("ModelPackageGroupName"))
        return EmptyResult()

    backend_cls.create_model_package = create_model_package
    backend_cls.update_model_package = update_model_package
    backend_cls.delete_model_package = delete_model_package
    backend_cls.delete_model_package_group = delete_model_package_group
    backend_cls.create_model = create_model
    models.Model.response_object = property(model_response)
    responses.SageMakerResponse.delete_model_package = response_delete_model_package
    responses.SageMakerResponse.delete_model_package_group = response_delete_model_package_group
    on_reset(_next_version.clear)
