"""Build (``setup``) or inspect (``inspect``) the scenario's AWS resources in moto; prints JSON. ``aws_world.py setup|inspect ENDPOINT``."""
import json
import sys

import boto3

REGION = "us-east-1"


def client(endpoint, service):
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing")


def setup(endpoint):
    ec2, elbv2, cloudwatch = client(endpoint, "ec2"), client(endpoint, "elbv2"), client(endpoint, "cloudwatch")
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock="10.30.%d.0/24" % i, AvailabilityZone=REGION + zone)["Subnet"]["SubnetId"]
               for i, zone in enumerate("ab")]
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=image, MinCount=4, MaxCount=4, SubnetId=subnets[0])["Instances"]]
    groups = {}
    for name in ("mol-blue", "mol-green"):
        groups[name] = elbv2.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=groups["mol-blue"], Targets=[{"Id": i} for i in ids[:2]])
    lb = elbv2.create_load_balancer(Name="mol-alb", Subnets=subnets, Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
    listener = elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80,
                                     DefaultActions=[{"Type": "forward", "TargetGroupArn": groups["mol-blue"]}])["Listeners"][0]["ListenerArn"]
    cloudwatch.put_metric_alarm(AlarmName="mol-5xx", MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ApplicationELB", Statistic="Sum",
                                Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    return {"listener": listener, "blue_ids": ids[:2], "green_ids": ids[2:], "target_groups": groups}


def inspect(endpoint):
    ec2, elbv2 = client(endpoint, "ec2"), client(endpoint, "elbv2")
    listener = elbv2.describe_listeners(LoadBalancerArn=elbv2.describe_load_balancers(Names=["mol-alb"])["LoadBalancers"][0]
                                        ["LoadBalancerArn"])["Listeners"][0]
    action = listener["DefaultActions"][0]
    weights = dict((g["TargetGroupArn"].split(":targetgroup/")[1].split("/")[0], g["Weight"])
                   for g in (action.get("ForwardConfig") or {}).get("TargetGroups") or [])
    targets = {}
    for group in elbv2.describe_target_groups()["TargetGroups"]:
        health = elbv2.describe_target_health(TargetGroupArn=group["TargetGroupArn"])["TargetHealthDescriptions"]
        targets[group["TargetGroupName"]] = sorted(t["Target"]["Id"] for t in health)
    states = {}
    for reservation in ec2.describe_instances()["Reservations"]:
        for instance in reservation["Instances"]:
            states[instance["InstanceId"]] = instance["State"]["Name"]
    return {"weights": weights, "targets": targets, "states": states}


if __name__ == "__main__":
    print(json.dumps({"setup": setup, "inspect": inspect}[sys.argv[1]](sys.argv[2])))
