# Coffre appliance image: Debian 12 + the appliance's packages + a signed Coffre release, hardened
# and sealed. Built by scripts/test-image (CI) and scripts/build-image (releases).
#
# Written for Debian's packer 1.6.6, whose qemu builder is built in: no `packer init` and no
# `required_plugins` block (a hard error there). With Packer >= 1.7 from HashiCorp, add
#   packer { required_plugins { qemu = { source = "github.com/hashicorp/qemu", version = ">= 1.1.0" } } }
# and run `packer init .` first (docs/appliance.md "Building with a newer Packer").

variable "base_image" {
  type        = string
  description = "qcow2 made by scripts/image/mkbase (Debian 12 from the cached debootstrap tree)"
}
variable "base_checksum" {
  type        = string
  description = "sha256:<hex> of base_image"
}
variable "ssh_private_key_file" {
  type        = string
  description = "ephemeral key of the temporary build user (its public half is in the base image)"
}
variable "bundle" {
  type        = string
  description = "signed release bundle (scripts/image/make-bundle)"
}
variable "update_key" {
  type        = string
  description = "Ed25519 public key (PEM) that coffre-update trusts on the appliance"
}
variable "version" {
  type    = string
  default = "dev"
}
variable "output_dir" {
  type    = string
  default = "output"
}
variable "accelerator" {
  type        = string
  default     = "tcg"
  description = "tcg (no KVM needed; Packer would pick kvm whenever /dev/kvm exists), or kvm on a build host with working KVM"
}
variable "memory" {
  type    = string
  default = "2048"
}
variable "cpus" {
  type    = string
  default = "2"
}

source "qemu" "coffre" {
  iso_url          = var.base_image
  iso_checksum     = var.base_checksum
  disk_image       = true
  use_backing_file = false
  skip_resize_disk = true
  format           = "qcow2"
  disk_compression = true
  disk_interface   = "virtio"
  net_device       = "virtio-net"
  accelerator      = var.accelerator
  headless         = true
  vnc_bind_address = "127.0.0.1"
  output_directory = var.output_dir
  vm_name          = "coffre-${var.version}.qcow2"
  # SSH forwarded on loopback only; -cpu max (V8 wants more than qemu64 under tcg)
  qemuargs = [
    ["-cpu", "max"],
    ["-m", "${var.memory}M"],
    ["-smp", var.cpus],
    ["-netdev", "user,id=user.0,hostfwd=tcp:127.0.0.1:{{ .SSHHostPort }}-:22"],
    ["-device", "virtio-net-pci,netdev=user.0"],
    ["-serial", "file:${var.output_dir}.serial.log"],
  ]
  host_port_min        = 20000
  host_port_max        = 40000
  communicator         = "ssh"
  ssh_username         = "build"
  ssh_private_key_file = var.ssh_private_key_file
  ssh_timeout          = "30m"
  boot_wait            = "5s"
  # the last step: delete the build user, reset machine-id, remove host keys, then power off
  shutdown_command = "sudo /usr/local/sbin/coffre-seal build --poweroff"
  shutdown_timeout = "15m"
}

build {
  sources = ["source.qemu.coffre"]

  provisioner "file" {
    source      = "${path.root}/../appliance"
    destination = "/tmp"
  }
  provisioner "file" {
    source      = var.bundle
    destination = "/tmp/coffre.bundle"
  }
  provisioner "file" {
    source      = var.update_key
    destination = "/tmp/coffre-update-key.pem"
  }
  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; sudo -n env {{ .Vars }} {{ .Path }}"
    script          = "${path.root}/provision.sh"
  }

  post-processor "checksum" {
    checksum_types      = ["sha256"]
    output              = "${var.output_dir}/SHA256SUMS"
    keep_input_artifact = true
  }
}
