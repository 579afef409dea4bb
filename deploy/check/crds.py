"""Strict validation of the Prometheus Operator's ServiceMonitor with its published models: the
object must parse, and every field it has must survive the round trip (an unknown field is dropped
by the model, so it shows as a difference)."""


def unknown_fields(given, kept, path=""):
    if isinstance(given, dict):
        if not isinstance(kept, dict):
            return [path or "/"]
        out = []
        for k, v in given.items():
            if k not in kept:
                out.append(f"{path}/{k}: unknown field")
            else:
                out.extend(unknown_fields(v, kept[k], f"{path}/{k}"))
        return out
    if isinstance(given, list) and isinstance(kept, list):
        return [e for a, b in zip(given, kept) for e in unknown_fields(a, b, path + "/[]")]
    return []


def service_monitor(obj):
    import pydantic
    from cloudcoil.models.prometheus_operator.v1 import ServiceMonitor

    try:
        model = ServiceMonitor.model_validate(obj)
    except pydantic.ValidationError as e:
        return [f"{'/'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()]
    return unknown_fields(obj, model.model_dump(by_alias=True, exclude_unset=True, mode="json"))


VALIDATORS = {("monitoring.coreos.com/v1", "ServiceMonitor"): service_monitor}
