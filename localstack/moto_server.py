"""moto's server, as `localstack/emulator start` runs it, with two additions.

* Auto Scaling's instance refreshes, which moto does not implement: StartInstanceRefresh,
  DescribeInstanceRefreshes and CancelInstanceRefresh are answered here. A refresh reports
  InProgress for POLLS describes, then Successful, and, as Auto Scaling does, sets the group's
  launch template to the refresh's desired configuration. (No instance is replaced: moto's
  instances run nothing.) So a change of user data rolls out locally as the README describes.
* An operation moto does not implement answers HTTP 501 with a one-line message, instead of a
  500 with a Python traceback that clients retry as a server fault.

It also makes four of moto 5.2.1's ways AWS's, where they made tests or the demo fail:
* CreateLaunchTemplateVersion keeps the user data as a plain string, and an Auto Scaling group
  then created from that version fails with HTTP 500 (an AssertionError in moto);
* CreateHostedZone with a CallerReference already used makes a second zone; AWS refuses it
  with HostedZoneAlreadyExists, which is what makes an SDK retry after a lost answer safe;
* RequestCertificate with an idempotency token whose certificate was deleted answers HTTP 500
  (a KeyError in moto); ACM keeps a token for an hour and answers it with that request's
  certificate, so here it answers the deleted certificate's ARN;
* RemoveRoleFromInstanceProfile of a role the profile does not hold answers HTTP 500 (a
  ValueError in moto), which the SDK retries as a server fault until it gives up: an SDK retry
  after a lost answer then failed a destroy. IAM answers NoSuchEntity, as here.
The tests run this server too (`infra_tests::Emulator`).

Usage: python moto_server.py -H HOST -p PORT (as moto_server)
"""

import argparse
import io
import json
import os
import threading
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from moto import __version__ as moto_version
from moto.acm.models import AWSCertificateManagerBackend
from moto.core.types import Base64EncodedString
from moto.ec2.models.launch_templates import LaunchTemplate
from moto.ec2.utils import parse_user_data
from moto.iam.exceptions import NoSuchEntity
from moto.iam.models import IAMBackend
from moto.route53.exceptions import Route53ClientError
from moto.route53.models import Route53Backend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple
from werkzeug.test import EnvironBuilder

NAMESPACE = "http://autoscaling.amazonaws.com/doc/2011-01-01/"
# Describes answered InProgress before a refresh is Successful.
POLLS = 2
REFRESH_ACTIONS = ("StartInstanceRefresh", "DescribeInstanceRefreshes", "CancelInstanceRefresh")


class Refresh:
    def __init__(self, number, group, template):
        self.id = f"moto-refresh-{number}"
        self.group = group
        self.template = template  # {"LaunchTemplateId": ..., "Version": ...}, maybe empty
        self.polls_left = POLLS
        self.status = "Pending"

    def active(self):
        return self.status in ("Pending", "InProgress", "Cancelling")

    def advance(self):
        """The status one more describe sees; True when the refresh has just succeeded."""
        if self.status == "Cancelling":
            self.status = "Cancelled"
        elif self.active():
            self.polls_left -= 1
            self.status = "InProgress" if self.polls_left >= 0 else "Successful"
            return self.status == "Successful"
        return False

    def member(self):
        template = "".join(
            f"<{key}>{escape(value)}</{key}>" for key, value in sorted(self.template.items())
        )
        desired = (
            f"<DesiredConfiguration><LaunchTemplate>{template}</LaunchTemplate></DesiredConfiguration>"
            if template
            else ""
        )
        done = 100 if self.status == "Successful" else 0
        return (
            f"<member><InstanceRefreshId>{self.id}</InstanceRefreshId>"
            f"<AutoScalingGroupName>{escape(self.group)}</AutoScalingGroupName>"
            f"<Status>{self.status}</Status><PercentageComplete>{done}</PercentageComplete>"
            f"<InstancesToUpdate>0</InstancesToUpdate><Strategy>Rolling</Strategy>{desired}</member>"
        )


def ok(action, result):
    body = (
        f'<{action}Response xmlns="{NAMESPACE}"><{action}Result>{result}</{action}Result>'
        f"<ResponseMetadata><RequestId>moto-refresh</RequestId></ResponseMetadata></{action}Response>"
    )
    return "200 OK", "text/xml", body


def error(status, code, message, json_protocol=False):
    if json_protocol:
        return status, "application/x-amz-json-1.1", json.dumps({"__type": code, "message": message})
    body = (
        f'<ErrorResponse xmlns="{NAMESPACE}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{escape(message)}</Message></Error><RequestId>moto</RequestId></ErrorResponse>"
    )
    return status, "text/xml", body


class Emulator:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.refreshes = []

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        form = parse_qs(body.decode("utf-8", "replace"))
        action = form.get("Action", [""])[0]
        signed = environ.get("HTTP_AUTHORIZATION", "")
        if action in REFRESH_ACTIONS and "/autoscaling/aws4_request" in signed:
            return self.respond(start_response, self.refresh(action, form, environ))
        try:
            return self.app(environ, start_response)
        except NotImplementedError:
            operation = action or environ.get("HTTP_X_AMZ_TARGET", "").split(".")[-1]
            service = signed.split("/")[3] if signed.count("/") >= 4 else "this service"
            message = f"moto {moto_version} does not implement {service}:{operation or environ['PATH_INFO']}"
            json_protocol = "json" in environ.get("CONTENT_TYPE", "")
            return self.respond(start_response, error("501 Not Implemented", "NotImplemented", message, json_protocol))

    @staticmethod
    def respond(start_response, answer):
        status, content_type, body = answer
        data = body.encode("utf-8")
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(data)))])
        return [data]

    def refresh(self, action, form, environ):
        group = form.get("AutoScalingGroupName", [""])[0]
        with self.lock:
            if action == "StartInstanceRefresh":
                return self.start(group, form)
            if action == "DescribeInstanceRefreshes":
                return self.describe(group, form, environ)
            return self.cancel(group)

    def start(self, group, form):
        if any(r.group == group and r.active() for r in self.refreshes):
            return error(
                "400 Bad Request",
                "InstanceRefreshInProgress",
                "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh.",
            )
        prefix = "DesiredConfiguration.LaunchTemplate."
        template = {k[len(prefix):]: v[0] for k, v in form.items() if k.startswith(prefix)}
        refresh = Refresh(len(self.refreshes) + 1, group, template)
        self.refreshes.append(refresh)
        return ok("StartInstanceRefresh", f"<InstanceRefreshId>{refresh.id}</InstanceRefreshId>")

    def describe(self, group, form, environ):
        wanted = {v[0] for k, v in form.items() if k.startswith("InstanceRefreshIds.member.")}
        members = []
        for refresh in reversed(self.refreshes):  # newest first, as Auto Scaling lists them
            if refresh.group != group or (wanted and refresh.id not in wanted):
                continue
            if refresh.advance() and refresh.template:
                self.pin_group(refresh, environ)
            members.append(refresh.member())
        return ok("DescribeInstanceRefreshes", f"<InstanceRefreshes>{''.join(members)}</InstanceRefreshes>")

    def cancel(self, group):
        for refresh in self.refreshes:
            if refresh.group == group and refresh.active():
                refresh.status = "Cancelling"
                return ok("CancelInstanceRefresh", f"<InstanceRefreshId>{refresh.id}</InstanceRefreshId>")
        return error(
            "400 Bad Request",
            "ActiveInstanceRefreshNotFound",
            "No in progress or pending Instance Refresh found for Auto Scaling group",
        )

    def pin_group(self, refresh, environ):
        """What Auto Scaling does when a refresh succeeds: the group takes its desired template."""
        form = {"Action": "UpdateAutoScalingGroup", "Version": "2011-01-01", "AutoScalingGroupName": refresh.group}
        form.update({f"LaunchTemplate.{k}": v for k, v in refresh.template.items()})
        update = EnvironBuilder(
            method="POST",
            path="/",
            headers={"Authorization": environ.get("HTTP_AUTHORIZATION", ""), "Host": environ.get("HTTP_HOST", "")},
            data=form,
        ).get_environ()
        list(self.app(update, lambda status, headers, exc_info=None: None))


def parse_version_user_data():
    """Make CreateLaunchTemplateVersion keep user data as CreateLaunchTemplate does."""
    create_version = LaunchTemplate.create_version

    def with_parsed_user_data(self, data, description):
        user_data = data.get("UserData")
        if user_data is not None and not isinstance(user_data, Base64EncodedString):
            data = {**data, "UserData": parse_user_data(user_data)}
        return create_version(self, data, description)

    LaunchTemplate.create_version = with_parsed_user_data


class HostedZoneAlreadyExists(Route53ClientError):
    def __init__(self, caller_reference):
        super().__init__(
            "HostedZoneAlreadyExists",
            f"A hosted zone has already been created with the specified caller reference {caller_reference}.",
        )


def unique_caller_references():
    """Refuse a CallerReference already used, as Route53 does."""
    create_hosted_zone = Route53Backend.create_hosted_zone

    def refusing_a_used_reference(self, name, private_zone, caller_reference=None, *args, **kwargs):
        if caller_reference and any(z.caller_reference == caller_reference for z in self.zones.values()):
            raise HostedZoneAlreadyExists(caller_reference)
        return create_hosted_zone(self, name, private_zone, caller_reference, *args, **kwargs)

    Route53Backend.create_hosted_zone = refusing_a_used_reference


def tokens_outlive_their_certificates():
    """Answer a token whose certificate was deleted with that certificate's ARN."""
    request_certificate = AWSCertificateManagerBackend.request_certificate

    def answering_a_deleted_certificate(self, domain_name, idempotency_token, *args, **kwargs):
        arn = idempotency_token and self._get_arn_from_idempotency_token(idempotency_token)
        if arn and arn not in self._certificates:
            return arn
        return request_certificate(self, domain_name, idempotency_token, *args, **kwargs)

    AWSCertificateManagerBackend.request_certificate = answering_a_deleted_certificate


def removing_a_role_not_held_is_no_such_entity():
    """Answer NoSuchEntity when the profile does not hold the role, as IAM does."""
    remove_role_from_instance_profile = IAMBackend.remove_role_from_instance_profile

    def answering_no_such_entity(self, profile_name, role_name):
        profile = self.get_instance_profile(profile_name)
        if all(role.name != role_name for role in profile.roles):
            raise NoSuchEntity(f"Role {role_name} is not in instance profile {profile_name}.")
        return remove_role_from_instance_profile(self, profile_name, role_name)

    IAMBackend.remove_role_from_instance_profile = answering_no_such_entity


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as moto_server sets it
    parse_version_user_data()
    unique_caller_references()
    tokens_outlive_their_certificates()
    removing_a_role_not_held_is_no_such_entity()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, Emulator(app), threaded=True)


if __name__ == "__main__":
    main()
