"""Disk speed measurements for etcd-style workloads: fio when installed, else built in."""
