# Homebrew formula for nuaws: a Nushell with AWS built in.
# `scripts/package brew` makes the source tarball (`git archive` of HEAD) and writes a copy of
# this formula with its sha256, and with its url: the local file by default, or `--url` (the
# release asset below, once the release uploads that very tarball). GitHub's own
# /archive/refs/tags/ tarballs are compressed by GitHub and need not match these bytes.
class Nuaws < Formula
  desc "Nushell with native AWS S3 and EC2 commands, streaming and caching"
  homepage "https://github.com/nuaws/nuaws"
  url "https://github.com/nuaws/nuaws/releases/download/v0.1.0/nuaws-0.1.0.tar.gz"
  # sha256 of the tarball above: scripts/package brew replaces this line.
  license "MIT"
  head "https://github.com/nuaws/nuaws.git", branch: "main"

  depends_on "rust" => :build

  uses_from_macos "zlib"

  def install
    system "cargo", "install", "--locked", "--bin", "nuaws", *std_cargo_args
    # The same man page as the .deb: generated from the installed binary's help.
    (buildpath/"nuaws.1").write Utils.safe_popen_read("bash", "packaging/man/nuaws-man", bin/"nuaws")
    man1.install "nuaws.1"
  end

  def caveats
    <<~EOS
      To use nuaws as your login shell, add it to /etc/shells first:
        echo #{opt_bin}/nuaws | sudo tee -a /etc/shells
        chsh -s #{opt_bin}/nuaws
    EOS
  end

  test do
    assert_match "nushell 0.115.1", shell_output("#{bin}/nuaws --version")
    assert_equal "0.115.1", shell_output("#{bin}/nuaws -n -c 'version | get nushell_version'").strip
    # Structured data through a real pipeline, and the AWS commands registered in this build.
    assert_equal "3", shell_output("#{bin}/nuaws -n -c '[1 2 3] | length'").strip
    assert_match "aws s3 buckets", shell_output("#{bin}/nuaws -n -c 'help commands | get name | str join (char nl)'")
    # A real AWS command with no credentials anywhere: a clean error naming what is missing,
    # not a crash or a hang.
    ENV["AWS_CONFIG_FILE"] = testpath/"config"
    ENV["AWS_SHARED_CREDENTIALS_FILE"] = testpath/"credentials"
    ENV["AWS_EC2_METADATA_DISABLED"] = "true"
    ENV["AWS_REGION"] = "us-east-1"
    assert_match "nuaws::aws::no_credentials", shell_output("#{bin}/nuaws -n -c 'aws s3 buckets' 2>&1", 1)
    assert_path_exists man1/"nuaws.1"
  end
end
