# bash completion for umbrafs(1)

_umbrafs_mount_options()
{
    local cur=$1 prefix= word
    # complete the last of a comma-separated list
    if [[ $cur == *,* ]]; then
        prefix=${cur%,*},
        cur=${cur##*,}
    fi
    case $cur in
        passfile=*)
            local file=${cur#passfile=}
            COMPREPLY=($(compgen -f -- "$file"))
            COMPREPLY=("${COMPREPLY[@]/#/${prefix}passfile=}")
            return
            ;;
        idle=*)
            COMPREPLY=($(compgen -W "idle=30s idle=10m idle=1h" -- "$cur"))
            COMPREPLY=("${COMPREPLY[@]/#/$prefix}")
            return
            ;;
    esac
    compopt -o nospace 2>/dev/null
    for word in $(compgen -W "ro rw allow_other allow_root default_permissions idle= passfile= extpass=" -- "$cur"); do
        COMPREPLY+=("$prefix$word")
    done
}

_umbrafs()
{
    local cur prev words cword command= i
    _init_completion -n = || return

    local commands="init mount info passwd fsck"
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            --password-file|--extpass|--scrypt-cost|--new-password-file|--cache-dir|--cache-size|-o)
                ((i++)) ;;
            -*) ;;
            *) command=${words[i]}; break ;;
        esac
    done

    case $prev in
        --password-file|--new-password-file)
            _filedir
            return ;;
        --cache-dir)
            _filedir -d
            return ;;
        --cache-size)
            COMPREPLY=($(compgen -W "500M 1G 4G 16G" -- "$cur"))
            return ;;
        --extpass)
            COMPREPLY=($(compgen -c -- "$cur"))
            return ;;
        --scrypt-cost)
            COMPREPLY=($(compgen -W "1024 16384 32768 65536 131072" -- "$cur"))
            return ;;
        -o)
            _umbrafs_mount_options "$cur"
            return ;;
    esac

    if [[ $cur == -* ]]; then
        local opts="--password-file --extpass --cache-dir --cache-size --insecure -v --verbose
                    -h --help -V --version"
        case $command in
            init) opts+=" --scrypt-cost" ;;
            mount) opts+=" -f --foreground -o -d --debug" ;;
            passwd) opts+=" --scrypt-cost --new-password-file" ;;
            fsck) opts+=" --repair -y --yes" ;;
        esac
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi

    if [[ -z $command ]]; then
        COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        return
    fi
    # STORE and MOUNTPOINT are folders
    _filedir -d
}

complete -F _umbrafs umbrafs
